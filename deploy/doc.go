// Package deploy holds the deployment artifacts (the compose deployment, the
// Kubernetes manifests, the Prometheus and Grafana provisioning, the
// deployment's Caddyfile) and, in its tests, their offline validation:
// Kubernetes manifests decoded strictly into k8s.io/api types, the compose
// file checked against the compose specification's schema, the Dockerfile
// and both Caddyfiles checked for the rules of a production deployment.
// It has no code of its own; deploy/healthcheck is the image's probe.
package deploy
