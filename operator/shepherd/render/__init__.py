"""Pure renderers: an AgentDeployment (typed model) in, desired Kubernetes objects (dicts) out.

No I/O here. ``render_all`` gathers every child; ``shepherd.apply`` sends them.
"""

from shepherd.render.all import ChildSet, render_all

__all__ = ["ChildSet", "render_all"]
