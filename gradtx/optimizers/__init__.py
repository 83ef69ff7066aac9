"""Named optimizers: each is one ``chain`` of blocks. One module per family; this package re-exports them."""

from gradtx.optimizers.adam_family import (
    adabelief,
    adamax,
    adamaxw,
    adan,
    amsgrad,
    radam,
    yogi,
)
from gradtx.optimizers.classic import (
    adagrad,
    adam,
    adamw,
    nadam,
    nadamw,
    rmsprop,
    sgd,
)
from gradtx.optimizers.factored import (
    adafactor,
    sm3,
)
from gradtx.optimizers.lbfgs import (
    lbfgs,
)
from gradtx.optimizers.sign_family import (
    adadelta,
    lion,
    novograd,
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
    polyak_sgd,
    rprop,
    sign_sgd,
    signum,
)
from gradtx.optimizers.trust_ratio import (
    fromage,
    lamb,
    lars,
    noisy_sgd,
)

__all__ = [
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "amsgrad",
    "fromage",
    "lamb",
    "lars",
    "lbfgs",
    "lion",
    "nadam",
    "nadamw",
    "noisy_sgd",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sign_sgd",
    "signum",
    "sm3",
    "yogi",
]
