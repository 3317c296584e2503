from collections.abc import Callable
from typing import Any
from typing import ParamSpec
from typing import TypeVar

from flask import Flask

_P = ParamSpec("_P")
_R = TypeVar("_R")
_U = TypeVar("_U")

class UserMixin:
    @property
    def is_active(self) -> bool: ...
    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_anonymous(self) -> bool: ...
    def get_id(self) -> str | None: ...

class AnonymousUserMixin:
    @property
    def is_active(self) -> bool: ...
    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_anonymous(self) -> bool: ...
    def get_id(self) -> None: ...

class LoginManager:
    login_view: str | None
    login_message: str
    login_message_category: str
    anonymous_user: type[AnonymousUserMixin]
    def __init__(self, app: Flask | None = ..., add_context_processor: bool = ...) -> None: ...
    def init_app(self, app: Flask, add_context_processor: bool = ...) -> None: ...
    def user_loader(self, callback: Callable[[str], _U]) -> Callable[[str], _U]: ...

# A proxy to the signed-in User or to an AnonymousUserMixin: what it is depends on the
# request, so it stays Any and the code that reads it says what it expects.
current_user: Any

def login_user(
    user: UserMixin,
    remember: bool = ...,
    duration: Any = ...,
    force: bool = ...,
    fresh: bool = ...,
) -> bool: ...
def logout_user() -> bool: ...
def login_required(func: Callable[_P, _R]) -> Callable[_P, _R]: ...
