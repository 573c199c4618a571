"""Integrations with the platforms Shipyard deploys to: Kubernetes (kustomize) and Airflow."""
