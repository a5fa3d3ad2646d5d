"""FAKE: a tests-only stand-in for MapR's Python package `mapr`, which cannot exist here.

It lets the seed document's "Advanced Encryption" example run as written. Its `security`
module exposes m7guard's real `field_encryption.FieldEncryption` under the import path the
seed uses; nothing in it encrypts on its own.
"""
