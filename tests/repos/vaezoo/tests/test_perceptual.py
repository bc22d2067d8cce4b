import unittest

import torch

from models import PerceptualAE


class TestPerceptual(unittest.TestCase):
    def setUp(self):
        self.model = PerceptualAE(3, 16)

    def test_forward(self):
        x = torch.randn(4, 3, 32, 32)
        self.assertEqual(self.model(x).shape, (4, 16))
