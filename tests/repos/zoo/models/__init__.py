from .resnetish import *
