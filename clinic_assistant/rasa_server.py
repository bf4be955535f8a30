"""The Rasa server, as ``python -m rasa`` with this project's message processor (``parse_cache.py``).

``python -m clinic_assistant.rasa_server run --model ... --endpoints endpoints.yml`` takes Rasa's own
arguments. Rasa 3.6 offers no setting for the processor class: its agent builds a ``MessageProcessor`` by
the name imported into ``rasa.core.agent``, so that name is pointed at the subclass before Rasa starts.
"""

import rasa.core.agent
from rasa.__main__ import main

from clinic_assistant.parse_cache import CachingMessageProcessor

if __name__ == "__main__":
    rasa.core.agent.MessageProcessor = CachingMessageProcessor
    main()
