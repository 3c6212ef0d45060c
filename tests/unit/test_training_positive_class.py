"""Issue 20: training's binary metrics and curves are about the ML canvas's positive class when it is set."""

import numpy as np
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from mlops_core.ml.training import classification_metrics

CLASSES = np.array(["churn", "stay"])
Y_TRUE = np.array(["churn", "churn", "churn", "stay", "stay", "stay", "stay", "stay"])
Y_PRED = np.array(["churn", "stay", "stay", "stay", "stay", "stay", "churn", "stay"])
P_CHURN = np.array([0.9, 0.4, 0.3, 0.2, 0.1, 0.35, 0.6, 0.05])
PROBA = np.column_stack([P_CHURN, 1 - P_CHURN])


def test_the_canvas_positive_class_overrides_the_default_rule():
    default = classification_metrics(Y_TRUE, Y_PRED, PROBA, CLASSES)
    stay = classification_metrics(Y_TRUE, Y_PRED, PROBA, CLASSES, positive_class="stay")
    assert default["recall"] == recall_score(Y_TRUE, Y_PRED, pos_label="churn") == 1 / 3
    assert stay["recall"] == recall_score(Y_TRUE, Y_PRED, pos_label="stay") == 4 / 5
    assert stay["precision"] == precision_score(Y_TRUE, Y_PRED, pos_label="stay")
    assert stay["roc_auc"] == roc_auc_score(Y_TRUE == "stay", 1 - P_CHURN)
    # a positive class that is not one of the labels falls back to the usual rule
    assert classification_metrics(Y_TRUE, Y_PRED, PROBA, CLASSES, positive_class="gone") == default
