"""The pain clinic's CRPS assistant: NLU components, actions' logic and launch tooling."""
