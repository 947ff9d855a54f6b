"""Training recipes: the paper's, and the authors' released code where the two differ.

``paper`` (default) is the method as published. ``official-code`` reproduces
the authors' code wherever it departs from the paper (measured side by side
with equal weights; docs/paper-vs-official-code.md has the list and the
effect of each difference):

* gate_softmax ``batch``: the image gate's softmax runs over the batch, not
  over the positions of one image;
* gamma_att 0: their default ``--mode retrieval`` trains the matching loss
  only (pass ``--gamma-att 1`` for their ``--mode sl``, the localisation run);
* schedule ``official``: the image lr halves at 1-based epochs 10, 20, ...
  (the paper schedule at 11, 21, ...) and training runs 101 epochs;
* logmel_pad ``reflect``: STFT frames padded by reflection (librosa < 0.9);
* short_clip_pad ``logmel``: short clips padded with 0.0 in the log-mel domain.

Every switch is also an option of its own: the recipe only sets the values
of the switches not given explicitly.
"""
from __future__ import annotations

from typing import Any

#: Marks a TrainOptions field whose value comes from the recipe (or the schedule) unless given.
FROM_RECIPE: Any = None

# lr_halving_offset: see model.training.engine.build_optimizer.
SCHEDULES: dict[str, dict[str, int]] = {
    "paper": {"lr_halving_offset": 0, "epochs": 100},
    "official": {"lr_halving_offset": 1, "epochs": 101},
}

RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"gate_softmax": "positions", "gamma_att": 1.0, "schedule": "paper",
              "logmel_pad": "constant", "short_clip_pad": "waveform"},
    "official-code": {"gate_softmax": "batch", "gamma_att": 0.0, "schedule": "official",
                      "logmel_pad": "reflect", "short_clip_pad": "logmel"},
}


def fill_from_recipe(options: Any) -> None:
    """Set every recipe-controlled field of ``options`` that is still None (in place)."""
    if options.recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {options.recipe!r}")
    for name, value in RECIPES[options.recipe].items():
        if getattr(options, name) is None:
            setattr(options, name, value)
    if options.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {options.schedule!r}")
    if options.epochs is None:
        options.epochs = SCHEDULES[options.schedule]["epochs"]


def recipe_help(name: str) -> str:
    """'paper: X, official-code: Y' for the --help text of a recipe-controlled option."""
    return ", ".join(f"{recipe}: {values[name]}" for recipe, values in RECIPES.items())
