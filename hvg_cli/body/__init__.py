"""SMPL-24 skeleton tables, forward/inverse kinematics, retargeting, smplx loading."""
