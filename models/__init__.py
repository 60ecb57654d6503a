"""The model cascade: detector, tracker, predictor and planner."""
