"""The model lifecycle, pure: recipes, metrics and the predict/learn loop."""

from riverrun.learners.auc import ROCAUC
from riverrun.learners.online import OnlineLearner, Served
from riverrun.learners.recipes import RECIPES, build_model
from riverrun.learners.scoring import Scoreboard

__all__ = ["RECIPES", "ROCAUC", "OnlineLearner", "Scoreboard", "Served", "build_model"]
