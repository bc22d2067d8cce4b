import yaml

from models import registry

with open("configs/plain.yaml") as handle:
    config = yaml.safe_load(handle)
model = registry[config["model"]["name"]](**config["model"])
