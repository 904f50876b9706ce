"""The ROS 2 sink: std_msgs/String (JSON) messages on a topic. rclpy is imported when the sink is created, never at
import."""
from __future__ import annotations

import dataclasses
from typing import Optional

from ..errors import EdgeRuntimeError
from ..schema import opt
from .base import Sink, SinkEvent

__all__ = ["Ros2SinkOptions", "Ros2Sink"]


@dataclasses.dataclass(frozen=True)
class Ros2SinkOptions:
    """A std_msgs/String (JSON) on ``topic`` for every change and a heartbeat."""

    topic: str = "/edge_runtime/decision"
    node_name: str = "edge_runtime"
    heartbeat_s: Optional[float] = opt(1.0, lo=0, lo_open=True)
    qos_depth: int = opt(10, lo=1)


class Ros2Sink(Sink):
    """std_msgs/String messages (the JSONL record) on a ROS 2 topic: every change and a heartbeat."""

    def __init__(self, topic: str = "/edge_runtime/decision", node_name: str = "edge_runtime",
                 heartbeat_s: Optional[float] = 1.0, qos_depth: int = 10) -> None:
        try:
            import rclpy  # type: ignore[import-not-found]
            from std_msgs.msg import String  # type: ignore[import-not-found]
        except ImportError as exc:
            raise EdgeRuntimeError("ros2 sink needs rclpy and std_msgs (%s): source your ROS 2 setup.bash before "
                                   "starting edge-runtime, or remove the ros2 sink from the config" % exc)
        self.name = "ros2:%s" % topic
        self.heartbeat_s = heartbeat_s
        self._rclpy = rclpy
        self._String = String
        self._own_init = not rclpy.ok()
        if self._own_init:
            rclpy.init()
        self._node = rclpy.create_node(node_name)
        self._pub = self._node.create_publisher(String, topic, qos_depth)

    def write(self, event: SinkEvent) -> None:
        msg = self._String()
        msg.data = event.to_json()
        self._pub.publish(msg)

    def close(self) -> None:
        self._node.destroy_node()
        if self._own_init and self._rclpy.ok():
            self._rclpy.shutdown()
