"""The names and tables the Pulumi program (components/) and the policies (policies/) share.

Standard library only, and nothing runs on import: `python policies/check.py` needs PyYAML and this package,
nothing else. A name defined here is defined nowhere else.

- `labels`: the portable GPU node labels, the GPU taint, the team and managed-by labels;
- `resources`: GPU extended-resource names (full GPUs and MIG slices);
- `namespaces`: the platform's namespace and the Kubernetes system namespaces;
- `priorities`: the PriorityClass names;
- `workloads`: every workload kind the policies cover and where it keeps its pod specs;
- `policy_rules`: the ids of the rules the cluster enforces at admission.
"""
