"""The graph IR and the tracer that records it from a forward run."""

from ember.graph.ir import Graph, Node, Value
from ember.graph.tracer import Tracer, trace

__all__ = ["Graph", "Node", "Value", "Tracer", "trace"]
