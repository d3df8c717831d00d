"""slimcli.slim: TF-Slim's layer library, native to TensorFlow 2.

    from slimcli import slim
    model = slim.Model(my_net)        # my_net uses slim.conv2d, slim.arg_scope, ...
    logits, end_points = model(images)

As with `import tf_slim as slim`, the modules are attributes: `slim.learning`,
`slim.metrics`, `slim.evaluation`, `slim.losses`, `slim.variables`, ...
"""

from slimcli.slim import checkpoints, initializers, layers, losses, regularizers, scopes, utils
from slimcli.slim import evaluation, learning, metrics, optimizers, quantize, summaries, variables
from slimcli.slim.checkpoints import (assign_from_checkpoint, assign_from_checkpoint_fn,
                                      assign_from_values, assign_from_values_fn,
                                      latest_checkpoint, list_variables, resolve_checkpoint_path,
                                      save_checkpoint)
from slimcli.slim.initializers import (constant_initializer, ones_initializer,
                                       random_normal_initializer, truncated_normal_initializer,
                                       variance_scaling_initializer, xavier_initializer,
                                       zeros_initializer)
from slimcli.slim.layers import (avg_pool2d, batch_norm, bias_add, conv2d, conv2d_in_plane,
                                 conv2d_transpose, convolution2d, convolution2d_transpose,
                                 dropout, flatten, fully_connected, max_pool2d, one_hot_encoding,
                                 repeat, separable_conv2d, separable_convolution2d, softmax,
                                 stack, unit_norm)
from slimcli.slim.regularizers import (apply_regularization, l1_l2_regularizer, l1_regularizer,
                                       l2_regularizer, sum_regularizer)
from slimcli.slim.scopes import (AUTO_REUSE, add_arg_scope, arg_scope, arg_scoped_arguments,
                                 current_arg_scope, get_variable_scope, has_arg_scope, name_scope,
                                 variable_scope)
from slimcli.slim.variables import (Model, VariableStore, add_model_variable, create_global_step,
                                    get_global_step, get_model_variables,
                                    get_or_create_global_step, get_trainable_variables,
                                    get_unique_variable, get_variables, get_variables_by_name,
                                    get_variables_by_suffix, get_variables_to_restore,
                                    local_variable, model_variable, variable)

xavier_initializer_conv2d = xavier_initializer
