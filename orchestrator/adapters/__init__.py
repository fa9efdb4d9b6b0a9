"""One adapter per outside system: MLflow, checkpoints, S3, Kubernetes; retries."""
