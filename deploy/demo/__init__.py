"""The demo: the whole pipeline on scikit-learn's 8x8 digits, with its report folder."""
