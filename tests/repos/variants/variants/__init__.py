from .net import Net
from .wrap import Trainer
