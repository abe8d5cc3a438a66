"""Email delivery over SMTP, with templates from config/email chosen by the user's locale, sent from a
worker thread of the process after the request has been answered."""

from __future__ import annotations

import atexit
import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "email"
QUEUE_SIZE = 1000      # messages waiting in one process; past it, a message fails at once
EXIT_WAIT_SECONDS = 10  # how long a stopping process still sends what it was asked to

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    pass


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10

    @staticmethod
    def language(locale: str | None) -> str:
        return "zh-CN" if not locale or locale.lower().startswith("zh") else "en"

    def render(self, template: str, locale: str | None, **values) -> tuple[str, str]:
        text = (TEMPLATES / f"{template}.{self.language(locale)}.txt").read_text(encoding="utf-8")
        subject, _, body = text.partition("\n")
        return subject.strip(), body.format(**values)

    def send(self, to: str, template: str, locale: str | None, **values) -> None:
        subject, body = self.render(template, locale, **values)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message["Message-ID"] = make_msgid()
        message.set_content(body)
        try:
            if self.tls:
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(type(exc).__name__) from None


class MailQueue:
    """Sends from a worker thread of this process, after the answer: a request that issues a code takes
    the same time whether a message goes out or not (an unknown name gets none), and the mail server's
    delays and failures reach no one's answer. `done(error)` runs in the worker once the message is sent
    (error None) or has failed (the reason's name), so the caller withdraws an undelivered code.
    Messages still queued when the process is killed are lost: their codes were never seen, and the
    user's next request supersedes them."""

    def __init__(self, mailer: Mailer, size: int = QUEUE_SIZE):
        self.mailer = mailer
        self._queue: queue.Queue = queue.Queue(size)
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, to: str, template: str, locale: str | None, values: dict,
               done: Callable[[str | None], None]) -> None:
        self._start()
        try:
            self._queue.put_nowait((to, template, locale, values, done))
        except queue.Full:
            self._report(done, "QueueFull")

    def drain(self, timeout: float = 30) -> bool:
        """Wait until every queued message is sent or failed; False if that takes longer than `timeout`."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="mail", daemon=True)
                self._worker.start()
                atexit.register(self.drain, EXIT_WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            to, template, locale, values, done = self._queue.get()
            try:
                try:
                    self.mailer.send(to, template, locale, **values)
                except DeliveryFailed as exc:
                    self._report(done, str(exc))
                except Exception as exc:  # a template or encoding fault: the type only, never the values
                    self._report(done, type(exc).__name__)
                else:
                    self._report(done, None)
            finally:
                self._queue.task_done()

    @staticmethod
    def _report(done: Callable[[str | None], None], error: str | None) -> None:
        try:
            done(error)
        except Exception as exc:  # the worker keeps going; the type only, never the values
            log.error("mail outcome not recorded", extra={"error": type(exc).__name__})


__all__ = ["Mailer", "MailQueue", "DeliveryFailed", "formataddr"]
