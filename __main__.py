"""ml-platform: load the stack config, build the platform, export what operators need."""

import pulumi

from components.config.errors import ConfigError
from components.config.loading import load_platform_config, read_pulumi_config
from components.config.rules import config_warnings
from components.platform import MlPlatform

try:
    config = load_platform_config(read_pulumi_config(), f"Pulumi.{pulumi.get_stack()}.yaml")
except ConfigError as error:
    # RunError: the CLI prints the message without a Python traceback; nothing has been registered.
    raise pulumi.RunError(str(error)) from None

for warning in config_warnings(config):
    pulumi.log.warn(warning)

platform = MlPlatform("ml-platform", config)
pulumi.export("cloud", platform.handle.cloud)
pulumi.export("clusterName", config.cluster.name)
pulumi.export("gpuPools", [pool.summary() for pool in platform.handle.gpu_pools])
