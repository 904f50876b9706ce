"""The GPIO sink: a Jetson GPIO line energized only while motion is allowed (de-energized = STOP). Jetson.GPIO is
imported when the sink is created, never at import."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ..errors import EdgeRuntimeError
from ..policy import Action
from ..schema import opt
from .base import Sink, SinkEvent

__all__ = ["GpioSinkOptions", "GpioSink"]


@dataclasses.dataclass(frozen=True)
class GpioSinkOptions:
    """A Jetson GPIO line, energized only while motion is allowed (de-energized = STOP): ``pin`` is
    energized for GO and SLOW, ``slow_pin`` (optional) only for GO. Pins are ``mode`` numbers.
    ``heartbeat_s`` applies only with a ``watchdog_pin``."""

    pin: int = opt(dataclasses.MISSING, lo=0)
    slow_pin: Optional[int] = opt(None, lo=0)
    mode: str = opt("BOARD", choices=("BOARD", "BCM", "CVM", "TEGRA_SOC"))
    active_high: bool = True
    #: toggled on every heartbeat, for an external watchdog relay that drops out when the toggling stops
    watchdog_pin: Optional[int] = opt(None, lo=0)
    heartbeat_s: Optional[float] = opt(0.1, lo=0, lo_open=True)


class GpioSink(Sink):
    """A Jetson GPIO output energized only while motion is allowed: de-energized = STOP.

    ``pin`` is energized for GO and SLOW, ``slow_pin`` (optional) only for GO. Lines are driven to STOP at
    start and on close, then released (``GPIO.cleanup``): wire a pull-down (a pull-up when ``active_high``
    is false) so a released line reads STOP. A process killed with SIGKILL leaves a line as it was: for a
    machine that must stop then too, add ``watchdog_pin``, toggled on every heartbeat, driving an external
    watchdog relay that drops out when the toggling stops.
    """

    def __init__(self, pin: int, slow_pin: Optional[int] = None, mode: str = "BOARD", active_high: bool = True,
                 watchdog_pin: Optional[int] = None, heartbeat_s: Optional[float] = 0.1) -> None:
        try:
            import Jetson.GPIO as GPIO  # type: ignore[import-not-found]
        except ImportError as exc:
            raise EdgeRuntimeError("gpio sink needs Jetson.GPIO (%s): pip install Jetson.GPIO on the Jetson, or remove "
                                   "the gpio sink from the config" % exc)
        self._gpio = GPIO
        self.name = "gpio:%s%d" % (mode, pin)
        self.pins = [p for p in (pin, slow_pin) if p is not None]
        self.pin, self.slow_pin, self.watchdog_pin = pin, slow_pin, watchdog_pin
        self.active_high = active_high
        self.heartbeat_s = heartbeat_s if watchdog_pin is not None else None
        self._toggle = False
        try:
            GPIO.setmode(getattr(GPIO, mode))
            for p in self.pins + ([watchdog_pin] if watchdog_pin is not None else []):
                GPIO.setup(p, GPIO.OUT, initial=self._level(False))
        except (ValueError, RuntimeError) as exc:  # Jetson.GPIO's errors for bad pins, modes and permissions
            raise EdgeRuntimeError("gpio sink: cannot set up %s pin(s) %s as outputs (%s); check the pin numbers for "
                                   "this board and that the user is in the gpio group" % (mode, self.pins, exc))

    def _level(self, energized: bool) -> Any:
        on = energized == self.active_high
        return self._gpio.HIGH if on else self._gpio.LOW

    def _drive(self, action: Action) -> None:
        self._gpio.output(self.pin, self._level(action is not Action.STOP))
        if self.slow_pin is not None:
            self._gpio.output(self.slow_pin, self._level(action is Action.GO))

    def write(self, event: SinkEvent) -> None:
        self._drive(event.decision.action)
        if self.watchdog_pin is not None:
            self._toggle = not self._toggle
            self._gpio.output(self.watchdog_pin, self._level(self._toggle))

    def close(self) -> None:
        self._drive(Action.STOP)
        pins = self.pins + ([self.watchdog_pin] if self.watchdog_pin is not None else [])
        self._gpio.cleanup(pins)
