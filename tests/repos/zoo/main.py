import torch
from models import *

net = ResNetish12()
print(net)
