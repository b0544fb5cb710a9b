"""Forward models: servo commands -> the expression the face settles into. The direct student, the
landmark-structured teacher, the expression-space objective that trains policies through them, data
aggregation in the twin, and refinement at inference."""
