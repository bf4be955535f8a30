"""Rasa's Redis lock store with its ticket updates made atomic, so several Rasa processes can share it.

Rasa 3.6's ``RedisLockStore`` issues and returns tickets by reading the conversation's lock, changing it
in the process and writing it back. Two processes receiving messages of one conversation at the same
moment both read "no tickets", both take ticket 0, and handle the messages at once: one of the turns is
then lost when the second tracker save overwrites the first. Here every change to a lock is a Redis
optimistic transaction (WATCH / MULTI / EXEC), retried when another process changed the lock meanwhile.

Used when ``LOCK_STORE_URL`` is set (``endpoints.yml`` names this class as the lock store's type).
"""

import json
from typing import Callable, Optional, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

Result = TypeVar("Result")


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime), create=True)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Return the ticket; the lock goes once nobody else holds or waits for one."""
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), create=False)

    def _change(self, conversation_id: str, change: Callable[[TicketLock], Result], create: bool) -> Optional[Result]:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    stored = pipe.get(key)
                    if not stored and not create:
                        return None
                    lock = TicketLock.from_dict(json.loads(stored)) if stored else self.create_lock(conversation_id)
                    result = change(lock)
                    pipe.multi()
                    if lock.is_someone_waiting():
                        pipe.set(key, lock.dumps())
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another process changed this lock first: read it again
