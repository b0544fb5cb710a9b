"""Landmark groups of MediaPipe's 468-point face mesh that the twin's mechanism is built around.

Indices follow MediaPipe's face mesh topology (the contours its FaceLandmarksConnections draw).
"Right" and "left" are the subject's, as in the blendshape names.
"""

RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# The skin fold above each lid margin, carried half-way by the lid.
RIGHT_LID_CREASE = (247, 30, 29, 27, 28, 56, 190)
LEFT_LID_CREASE = (467, 260, 259, 257, 258, 286, 414)

RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)

LIPS_OUTER_UPPER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LIPS_OUTER_LOWER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
LIPS_INNER_UPPER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LIPS_INNER_LOWER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS_OUTER = (61, 291)
MOUTH_CORNERS_INNER = (78, 308)

# Openings in the canonical mesh that the real face has: triangles whose three corners all lie on one of
# these rings are removed so the eyeballs and the mouth show through.
OPENINGS = (
    RIGHT_EYE_UPPER + RIGHT_EYE_LOWER,
    LEFT_EYE_UPPER + LEFT_EYE_LOWER,
    LIPS_INNER_UPPER + LIPS_INNER_LOWER + MOUTH_CORNERS_INNER,
)

RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre, then image-right, top, image-left, bottom rim points
LEFT_IRIS = (473, 474, 475, 476, 477)
