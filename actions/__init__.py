"""rasa-sdk actions. Thin: the logic lives in the clinic_assistant package."""
