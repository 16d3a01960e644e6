"""``docsum rollout``: canaries and blue/green switches on clusters without Argo Rollouts.

The gateway splits each upstream's calls between versions by the weights in its backends
ConfigMap; blue/green switches the gateway Service's selector between two slots. Every step
that sends more traffic to a new version is gated on Prometheus: the new version's error rate
and p99 latency against the current one's.
"""
