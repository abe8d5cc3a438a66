"""Email delivery over SMTP, with templates from config/email chosen by the user's locale."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "email"


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


__all__ = ["Mailer", "DeliveryFailed", "formataddr"]
