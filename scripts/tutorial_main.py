"""The tutorial's own `__main__` program, with only its data-loading line swapped for ours.

Run: python scripts/tutorial_main.py [MNIST_DIR]   (prints the tutorial's lines; ~1 minute)
"""

import sys

from scribblenet.mnist import load_mnist
from scribblenet.tutorial import NeuralNetwork, pre_process_data

if __name__ == "__main__":
    train_x, train_y, test_x, test_y = load_mnist(sys.argv[1] if len(sys.argv) > 1 else None)

    train_x, train_y, test_x, test_y = pre_process_data(train_x, train_y, test_x, test_y)

    print("train_x's shape: " + str(train_x.shape))
    print("test_x's shape: " + str(test_x.shape))

    layers_dims = [50, 10]

    ann = NeuralNetwork(layers_dims)
    ann.fit(train_x, train_y, learning_rate=0.1, n_iterations=100)
    ann.predict(train_x, train_y)
    print("Train Accuracy:", ann.predict(train_x, train_y))
    print("Test Accuracy:", ann.predict(test_x, test_y))
    ann.plot_cost()
