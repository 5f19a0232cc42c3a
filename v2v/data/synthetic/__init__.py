"""Synthetic datasets with exact ground truth: ``toycity`` (street label-map videos with flow,
for vid2vid) and ``puppets`` (articulated 2-D figures with BODY_25 keypoints, for FOMM and
dance transfer). See :mod:`v2v.data.synthetic.toycity` and :mod:`v2v.data.synthetic.puppets`.
"""
