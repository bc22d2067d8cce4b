from vitlib.tiny import TinyViT
from vitlib.mixer import Mixer
