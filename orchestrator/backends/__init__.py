"""Where children run: local processes or Kubernetes Jobs, behind one interface."""
