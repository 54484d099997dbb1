"""Code shared by training and serving: the MNIST data, the input contract, the model store."""
