"""spaCy pipeline built from code and custom Rasa NLU components."""
