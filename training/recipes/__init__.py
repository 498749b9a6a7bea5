"""Training recipes: one per model family (``stcn``, ``rde``, ``swem``), registered by name.

    from training.recipes import recipe_class
    recipe = recipe_class("rde")(stage=3)            # or recipe_class(cfg.model).from_config(cfg)
"""
from training.recipes.base import RECIPES, StageDefaults, TrainingRecipe, TrainingStep, register_recipe
from training.recipes.stcn import STCNRecipe
from training.recipes.rde import RDERecipe
from training.recipes.swem import SWEMRecipe


def all_recipes():
    """Every registered family: {name: recipe class}."""
    return dict(RECIPES)


def recipe_class(name):
    if name not in RECIPES:
        raise ValueError(f"no training recipe for model {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def get_recipe(name, stage, options=None):
    """The recipe of family ``name`` built for ``stage`` (family options: given ones, else the stage's)."""
    return recipe_class(name)(stage, options)


__all__ = ["RECIPES", "RDERecipe", "STCNRecipe", "SWEMRecipe", "StageDefaults", "TrainingRecipe", "TrainingStep",
           "all_recipes", "get_recipe", "recipe_class", "register_recipe"]
