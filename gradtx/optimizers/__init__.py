"""Named optimizers: each is one ``chain`` of blocks. One module per family; this package re-exports them."""

from gradtx.optimizers.classic import adagrad, adam, adamw, nadam, nadamw, rmsprop, sgd

__all__ = ["adagrad", "adam", "adamw", "nadam", "nadamw", "rmsprop", "sgd"]
