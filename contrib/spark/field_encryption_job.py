"""The field_encryption Spark job, as a file for spark-submit (which runs a file, not a
module): encrypt or decrypt columns of a Parquet dataset on the cluster's executors.

    spark-submit --master yarn --archives env.tar.gz#env \\
        --conf spark.pyspark.python=./env/bin/python \\
        contrib/spark/field_encryption_job.py encrypt IN OUT -c pan -c ssn --kms-key-id ...

Options: `python -m field_encryption.spark -h` (docs/field-encryption.md, "On Spark").
"""

from field_encryption.spark import run_job

if __name__ == "__main__":
    raise SystemExit(run_job())
