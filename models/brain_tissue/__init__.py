"""Brain tissue segmentation (background / CSF & other brain / grey matter / white matter) on T1 MRI slices."""
