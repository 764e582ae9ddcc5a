"""Temporal alignment: :class:`~streamkit.align.core.AlignerCore` (pure) puts every stream
on the shared clock; :class:`~streamkit.align.stage.AlignStage` is its thin stage."""
