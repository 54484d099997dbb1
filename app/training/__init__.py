"""The Kedro training pipeline: data → preprocess → train → evaluate → export → register."""
