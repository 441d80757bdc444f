"""The one error a deployment raises: what is wrong, naming the resource and property concerned."""


class TemplateError(Exception):
    """A template Squall cannot deploy as written; the message says where and what to change."""
