"""A model whose constructor and forward change process-wide state."""
import logging
import os
import random
import sys
import warnings

import torch
import torch.nn as nn


class Meddles(nn.Module):
    def __init__(self):
        super().__init__()
        logging.getLogger("torch").setLevel(logging.CRITICAL)
        logging.getLogger().setLevel(logging.DEBUG)
        logging.disable(logging.WARNING)
        torch.manual_seed(1234)
        random.seed(99)
        torch.set_default_dtype(torch.float64)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        os.environ["SHAPECHECK_TEST_MEDDLED"] = "1"
        sys.path.append("/meddled")
        warnings.simplefilter("error")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        torch.set_grad_enabled(False)
        torch.set_float32_matmul_precision("medium")
        torch.manual_seed(42)
        sys.setrecursionlimit(5000)
        return self.fc(x)
