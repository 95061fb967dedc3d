"""The records of a run folder are declared once (bench.store.records); the tables' columns and
types are derived from the declarations. The lists below are written out as literals, so
that a column lost, renamed, retyped or moved fails here: old run folders must still read and
a resumed one must get rows of the same shape."""

import dataclasses
import math
import typing

import pytest

from bench.store import records, schema

RESULTS_CSV_HEADER = (
    "run_id,cell_id,part,dataset,backend,loss,optimizer,lr,batch_size,hidden,activation,"
    "epochs,dtype,threads,device,output,momentum,weight_decay,preprocess,init,order,"
    "eval_every,tf32,repeat,seed,session,host,status,error,diverged_epoch,threads_effective,"
    "n_train,n_test,n_features,n_classes,n_params,build_s,stage_s,first_epoch_s,epoch_s,"
    "epoch_s_min,epoch_s_max,epoch_s_spread,noisy,train_s,samples_per_s,gflops,flops_per_sample,"
    "roofline,predict_s,eval_s,cell_s,peak_host_mb,peak_device_mb,epochs_run,train_loss,test_loss,"
    "train_acc,test_acc,best_test_acc,target_acc,time_to_target_s,started_at,finished_at,"
    "shared_host,lost_on,extra_epoch_s"
)
CURVES_CSV_HEADER = (
    "run_id,cell_id,part,dataset,backend,loss,optimizer,lr,batch_size,hidden,activation,"
    "epochs,dtype,threads,device,repeat,round,epoch,epoch_s,elapsed_s,epoch_loss,train_loss,"
    "test_loss,train_acc,test_acc"
)
AXES = "dataset backend loss optimizer lr batch_size hidden activation epochs dtype threads device"
SETTINGS = "part output momentum weight_decay preprocess init order eval_every tf32"
INT = (
    "batch_size epochs threads eval_every repeat seed diverged_epoch n_train n_test "
    "n_features n_classes n_params epochs_run epoch session round"
)
FLOAT = (
    "lr momentum weight_decay build_s first_epoch_s epoch_s epoch_s_min epoch_s_max "
    "epoch_s_spread train_s samples_per_s gflops flops_per_sample roofline predict_s eval_s "
    "cell_s train_loss "
    "test_loss train_acc test_acc best_test_acc target_acc time_to_target_s elapsed_s "
    "epoch_loss peak_host_mb peak_device_mb stage_s"
)
BOOL = "noisy tf32"
MEASURED = (
    "status diverged_epoch stage_s first_epoch_s epoch_s epoch_s_min epoch_s_max "
    "epoch_s_spread noisy train_s samples_per_s gflops flops_per_sample predict_s eval_s "
    "epochs_run train_loss "
    "test_loss train_acc test_acc best_test_acc time_to_target_s extra_epoch_s"
)
ENV = (
    "run_id name command sweep cells threads verify replay plugins devices status owner started_at "
    "resumed_at finished_at cells_not_run sessions time_accounting python machine versions "
    "keras_backend blas git_commit matmul_gflops matmul_gflops_by_threads threads_effective "
    "hosts schedulers source converted_by"
)


def test_the_derived_columns_are_the_tables_columns_in_order():
    assert ",".join(schema.RESULT_COLUMNS) == RESULTS_CSV_HEADER
    assert ",".join(schema.CURVE_COLUMNS) == CURVES_CSV_HEADER
    assert schema.AXES == tuple(AXES.split())
    assert schema.SETTINGS == tuple(SETTINGS.split())
    assert schema.KEY_COLUMNS == ("cell_id", "repeat")
    assert ",".join(schema.CURVE_KEYS) == CURVES_CSV_HEADER.split(",epoch,")[0]


def test_the_derived_column_types_are_the_readers_types():
    assert schema.INT_COLUMNS == set(INT.split())
    assert schema.FLOAT_COLUMNS == set(FLOAT.split())
    assert schema.BOOL_COLUMNS == set(BOOL.split())
    assert set(schema.COLUMN_TYPES) == set(INT.split()) | set(FLOAT.split()) | set(BOOL.split())
    # shared_host holds True/False but is read as text, as the Hosts section reads it
    assert "shared_host" not in schema.COLUMN_TYPES


def test_the_measured_columns_and_env_fields_are_declared():
    assert schema.MEASURED_COLUMNS == tuple(MEASURED.split())
    assert schema.ENV_FIELDS == tuple(ENV.split())


def test_a_row_is_one_declaration_and_rejects_what_it_does_not_declare():
    row = records.ResultRow(cell_id="a", repeat=0, status="ok", epoch_s=0.5)
    assert tuple(row.as_row()) == schema.RESULT_COLUMNS
    assert row.as_row()["test_acc"] is None  # not given: missing, written empty
    with pytest.raises(TypeError, match="epoch_secs"):
        records.ResultRow(epoch_secs=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.epoch_s = 1.0
    epoch = records.EpochRecord(epoch=1, epoch_s=0.1, elapsed_s=0.1, epoch_loss=0.7)
    assert math.isnan(epoch.as_row()["test_acc"])  # not evaluated after this epoch
    curve = records.CurveRow(cell_id="a", repeat=0, **epoch.as_row())
    assert tuple(dataclasses.asdict(curve)) == schema.CURVE_COLUMNS


def _types(record) -> dict:
    """Each field's type without None (every column may be missing)."""
    hints = typing.get_type_hints(record)
    return {name: set(typing.get_args(tp)) - {type(None)} or {tp} for name, tp in hints.items()}


def test_one_column_one_type_across_the_tables():
    """A column both tables hold (epoch_s, train_loss, ...) has one type: readers type the
    columns by name."""
    result, curve = _types(records.ResultRow), _types(records.CurveRow)
    shared = set(result) & set(curve)
    assert {"epoch_s", "train_loss", "test_acc", "repeat", "dataset", "run_id"} <= shared
    assert {name: result[name] for name in shared} == {name: curve[name] for name in shared}
