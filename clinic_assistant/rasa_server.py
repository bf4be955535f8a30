"""The Rasa server, as ``python -m rasa`` with this project's message processor (``message_processor.py``).

``python -m clinic_assistant.rasa_server run --model ... --endpoints endpoints.yml`` takes Rasa's own
arguments. Rasa 3.6 offers no setting for the processor class: its agent builds a ``MessageProcessor`` by
the name imported into ``rasa.core.agent``, so that name is pointed at the subclass before Rasa starts.
"""

import os

import rasa.core.agent
from rasa.__main__ import main

from clinic_assistant.message_processor import ClinicMessageProcessor

# Sanic reads SANIC_* variables when Rasa creates its app. No request to the channels needs more than this (a
# message is at most 5,000 characters, up to 12 bytes each as escaped JSON, and the widget's long-polling may
# carry a few in one request); a larger body is refused with a 413 before it is read whole.
REQUEST_MAX_BYTES = 256 * 1024

if __name__ == "__main__":
    os.environ.setdefault("SANIC_REQUEST_MAX_SIZE", str(REQUEST_MAX_BYTES))
    rasa.core.agent.MessageProcessor = ClinicMessageProcessor
    main()
