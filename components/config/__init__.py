"""The one schema of a stack file: `ml-platform:*` keys in `Pulumi.<stack>.yaml`.

- `base`: the model base class, shared types and the patterns error messages explain;
- `cluster`, `gpu_pools`, `teams`, `scaling`, `policies`: one module per section's models;
- `platform`: `PlatformConfig`, the whole stack, with the defaults that depend on the environment;
- `errors`: `Problem` and `ConfigError` (every problem at once, each naming its stack key path);
- `cluster_rules`, `pool_rules`, `rules`: the rules that span keys (the cloud, the GPU catalogue);
- `loading`: reads the stack's config, runs the schema and the rules, raises `ConfigError`.

Import from the modules themselves; this file imports nothing, so no module of the package depends on another
through it.
"""
