"""The nets factory: every image classifier of TF-Slim, checkpoint-exact."""

from slimcli.nets.nets_factory import (NetworkFn, get_net_spec, get_network_fn, list_nets,
                                       register_family_modules)
from slimcli.nets.registry import NETS_REGISTRY, NetSpec, ZooCheckpoint
