"""Answerers: anything that maps (context, question) to answer text. See base.py."""

from .base import ANSWERERS, Answer, Answerer, Request, load_answerer, register

__all__ = ["ANSWERERS", "Answer", "Answerer", "Request", "load_answerer", "register"]
