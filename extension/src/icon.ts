import { LabIcon } from '@jupyterlab/ui-components';

import pyrolabSvg from '../style/icons/pyrolab.svg';

/** The sidebar's tab icon (a flask with a status light). */
export const pyrolabIcon = new LabIcon({
  name: 'pyrolab-jupyter:icon',
  svgstr: pyrolabSvg
});
