"""Typed keys of what the web app keeps for its views."""

from aiohttp import web

from clinic_assistant.clinic_profile import ClinicProfile

ASSISTANT_URL = web.AppKey("assistant_url", str)  # where browsers reach the Rasa server
CLINIC = web.AppKey("clinic", ClinicProfile)
