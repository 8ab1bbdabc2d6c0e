"""Plain ``nn.Module`` architectures: forward passes only, no loss or training logic."""
