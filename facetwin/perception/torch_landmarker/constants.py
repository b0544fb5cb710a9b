"""MediaPipe's Face Landmarker settings, as its graphs and calculators set them (google-ai-edge/mediapipe).

Each value names the file it comes from, so a change upstream can be followed here:
- tasks/cc/vision/face_detector/face_detector_graph.cc (the legacy short-range branch: the bundle's
  face_detector.tflite carries no FACE_DETECTOR_METADATA, so these defaults are the ones in force);
- tasks/cc/vision/face_detector/proto/face_detector_graph_options.proto (thresholds);
- tasks/cc/vision/face_landmarker/face_landmarks_detector_graph.cc (tracking rect, presence);
- calculators/tensor/image_to_tensor_* (crop geometry, borders, value ranges; the ranges also sit in
  each model's TFLITE_METADATA normalisation, which a test reads back).
"""

from __future__ import annotations

# --- detector (face_detector_graph.cc) ---------------------------------------------------------
DETECTOR_MEMBER = "face_detector.tflite"
DETECTOR_SIZE = 128
ANCHOR_NUM_LAYERS = 4
ANCHOR_MIN_SCALE = 0.1484375
ANCHOR_MAX_SCALE = 0.75
ANCHOR_OFFSET = 0.5
ANCHOR_STRIDES = (8, 16, 16, 16)
ANCHOR_ASPECT_RATIOS = (1.0,)
ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO = 1.0  # adds one more anchor per location
ANCHOR_FIXED_SIZE = True  # anchors are 1x1: the regressor's w, h are scaled by DETECTOR_SIZE only
NUM_BOXES = 896
NUM_COORDS = 16  # x, y, w, h (reverse_output_order: XYWH), then 6 keypoints x, y
NUM_KEYPOINTS = 6
SCORE_CLIPPING = 100.0
MIN_DETECTION_CONFIDENCE = 0.5  # face_detector_graph_options.proto default
MIN_SUPPRESSION_IOU = 0.5  # weighted NMS, intersection over union
# letterboxed (keep_aspect_ratio) with a zero border; input range [-1, 1] (mean 127.5, std 127.5)
DETECTOR_RANGE = (-1.0, 1.0)
# rotation: keypoint 0 (the observer's left eye) -> keypoint 1, target angle 0; box scaled 1.5x
DETECTOR_ROTATION_KEYPOINTS = (0, 1)
DETECTOR_RECT_SCALE = 1.5

# --- landmark model (face_landmarks_detector_graph.cc) -----------------------------------------
LANDMARKS_MEMBER = "face_landmarks_detector.tflite"
LANDMARKS_SIZE = 256
NUM_LANDMARKS = 478
# warped with a replicated border (BORDER_UNSPECIFIED -> replicate), no letterbox; range [0, 1]
LANDMARKS_RANGE = (0.0, 1.0)
MIN_PRESENCE_CONFIDENCE = 0.5  # FaceLandmarkerOptions.min_face_presence_confidence default
# next-frame (tracking) rect: rotation from landmark 33 -> 263, square on its long side, scaled 1.5x
TRACKING_ROTATION_LANDMARKS = (33, 263)
TRACKING_RECT_SCALE = 1.5

# --- the warp (image_to_tensor_converter_opencv.cc: cv::warpPerspective, INTER_LINEAR, uint8) --
# OpenCV's bilinear warp quantises source positions to 1/32 pixel (INTER_BITS = 5) and rounds the
# result to uint8 before the value range is applied.
WARP_SUBPIXELS = 32
